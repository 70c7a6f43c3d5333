"""riskstream.scenarios"""
