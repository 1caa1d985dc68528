"""The only code that talks to Google Cloud (or its emulators). No business rules here."""
