"""Story-briefing Telegram bot: a pure story core and a thin Telegram shell."""
