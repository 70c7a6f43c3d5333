"""riskstream.grid"""
