"""livemetrics.stack"""
