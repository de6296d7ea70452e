"""livemetrics.sinks"""
