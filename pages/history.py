import streamlit as st

st.title("History")
st.write("Coming next: instant search over every run, side-by-side comparison with diffs. "
         "Meanwhile `flux-lab history --search WORDS` finds runs from the command line.")
