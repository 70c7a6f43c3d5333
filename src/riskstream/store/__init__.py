"""riskstream.store"""
