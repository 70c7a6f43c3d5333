"""riskstream.risk"""
