"""The tests' 835s are written by the same writer as the sample data's."""

from upstream.domain.x12_writer import Clp, Remit, Svc, build_835, write_835

__all__ = ["Clp", "Remit", "Svc", "build_835", "write_835"]
