"""Tests of the simulated worlds (recplat.simulation)."""
