"""riskstream.engine"""
