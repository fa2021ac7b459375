"""HTTP plumbing shared by every area's endpoints: auth, sessions, writes, problems."""
