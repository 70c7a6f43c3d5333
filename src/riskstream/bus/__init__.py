"""riskstream.bus"""
