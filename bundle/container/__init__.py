"""The Docker seam (a small protocol with the Docker SDK implementation behind it; nothing else
imports docker) and the capture that runs inside the pinned image. Imports store and below."""
