"""The denial-code catalogue: every CARC and the remark codes (RARCs) Upstream meets."""
