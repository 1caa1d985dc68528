"""A practice as its people see it: who they are and may do (`people`), the settings forms
(`settings_forms`), and what Upstream gained them (`gains`)."""
