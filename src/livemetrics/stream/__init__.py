"""livemetrics.stream"""
