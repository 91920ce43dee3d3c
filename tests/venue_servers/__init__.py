"""Loopback venues for the tests: Binance WS API, BitMEX REST + websocket, a FIX 4.4 acceptor."""
