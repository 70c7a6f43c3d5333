"""riskstream.domain"""
