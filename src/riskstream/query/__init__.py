"""riskstream.query"""
