import streamlit as st

if "workbench" not in st.session_state:  # reached without the router (see app.py)
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "goto": "history"})

st.title("History")
st.write("Coming next: instant search over every run, side-by-side comparison with diffs. "
         "Meanwhile `flux-lab history --search WORDS` finds runs from the command line.")
