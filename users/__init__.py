"""Simulated Gemini clients: the GeminiUser base, scenario users and the transports."""
