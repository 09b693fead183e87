"""Pure story core: model, parser and library. Never imports telegram."""

from bot.stories.model import Story

__all__ = ["Story"]
