"""livemetrics.simulate"""
