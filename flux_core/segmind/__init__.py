"""Talking to Segmind: the client (sync and async twins), job handles, retries, the request budget."""
