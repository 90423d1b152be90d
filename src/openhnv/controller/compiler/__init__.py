"""The policy compiler: a snapshot of northbound documents -> each host's desired
southbound rows. Pure: it imports neither the northbound service nor the southbound."""
