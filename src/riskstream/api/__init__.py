"""riskstream.api"""
