"""Pure domain code: records, normalization, parsing. Imports no cloud client."""
