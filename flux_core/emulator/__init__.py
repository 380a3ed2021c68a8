"""The local stand-in for Segmind's API: outside the product's runtime path (tests, benches, offline use)."""

from flux_core.emulator.server import EmulatorConfig, EmulatorServer, serve_forever

__all__ = ["EmulatorConfig", "EmulatorServer", "serve_forever"]
