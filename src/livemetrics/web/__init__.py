"""livemetrics.web"""
