"""The local stack: Google's emulators, each function under functions-framework, and the
Storage → Eventarc bridge. Development tooling; never deployed."""
