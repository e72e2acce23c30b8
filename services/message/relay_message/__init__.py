"""The message service: conversations, messages, seq numbers, reads, reactions."""
