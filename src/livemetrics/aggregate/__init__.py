"""livemetrics.aggregate"""
