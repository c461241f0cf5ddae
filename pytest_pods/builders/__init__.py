"""Image builders: Dockerfile text -> instructions (:mod:`.dockerfile`), the build context and
``.dockerignore`` (:mod:`.context`), stages -> cached steps -> an image (:mod:`.build`)."""
