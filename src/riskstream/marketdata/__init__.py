"""riskstream.marketdata"""
