"""The presence service: who is online where, away, last seen, replica liveness, user stats."""
