"""livemetrics.engine"""
