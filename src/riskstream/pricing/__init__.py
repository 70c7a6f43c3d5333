"""riskstream.pricing"""
