"""Runtime: everything that runs the generated code with torch (train, ablate, audit, export).

Imports torch; the compiler and back ends below it never import this package.
"""
