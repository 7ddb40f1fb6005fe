"""Tether under the agent frameworks people already use, one optional extra each.

`tether.integrations.langgraph` (`pip install 'tether[langgraph]'`): a LangGraph checkpointer.
`tether.integrations.openai_agents` (`tether[openai-agents]`): an OpenAI Agents SDK session.
`tether.integrations.adk` (`tether[adk]`): a Google ADK session service.
`tether.integrations.a2a` (`tether[a2a]`): an a2a-sdk task store.
Nothing here is imported by `import tether`; each module imports its framework when it is used.
"""
