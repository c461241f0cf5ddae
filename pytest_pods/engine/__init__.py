"""The container engine: store, runtime, cgroups, layers. Imports nothing above it."""
