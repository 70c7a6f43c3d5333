"""riskstream.web"""
