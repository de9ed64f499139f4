"""`docker build`: the Dockerfile front end, .dockerignore, the build context and layer diffs.

One module per concern: `dockerfile` parses a Dockerfile into stages of
instructions, `dockerfile_words` expands variables with Docker's lexer rules,
`dockerignore` filters the context, `context` receives and checksums it, and
`layerdiff` turns a changed directory into a layer tar.
"""
