"""nb-evidence bisect (issue 14): the commit where a predicate on a capture turned bad, found by
k-way bisection over detached worktrees of the user's repository (bundle.bisect.run)."""
