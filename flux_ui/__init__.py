"""Streamlit-only pieces shared by the pages: the History gallery element, how the app is served, prompt templates."""
