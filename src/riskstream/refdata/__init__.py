"""riskstream.refdata"""
