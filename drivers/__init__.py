"""Drivers: the mock chip (drivers.mock), the wire-protocol host driver (drivers.serial), the
device-side server (drivers.server) and session replay (drivers.replay). Imports only hil."""
