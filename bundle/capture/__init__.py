"""Running one capture: spec, target profiles, the plan (one shared argument list), the recorded
runner, the environment allow-list, and the stages that run steps and collect traces and images.
Imports bundle.model and bundle.analysis."""
