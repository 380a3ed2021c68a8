import streamlit as st

st.title("Compare")
st.write("Coming next: sweep grids over seeds, safety tolerances and prompt variants, with A/B views. "
         "Meanwhile `flux-lab sweep` runs them from the command line.")
