"""Flux Lab: the Streamlit router (the pages come with the next issues)."""

import streamlit as st

st.set_page_config(page_title="Flux Lab", layout="wide")
st.title("Flux Lab")
st.write("The workbench pages are being built. Meanwhile the `flux-lab` command line does it all: "
         "`flux-lab generate --emulator --prompt \"a red cube\"`.")
