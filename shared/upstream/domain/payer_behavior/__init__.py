"""Payer intelligence: each payer's behaviour fingerprint and the archetype it falls into."""
