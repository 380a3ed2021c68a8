import streamlit as st

if "workbench" not in st.session_state:
    # Opened without the router: after a server restart Streamlit may run a pages/ file directly
    # (its legacy multipage mode) until app.py has called st.navigation once. Go through the router.
    st.switch_page("app.py", query_params=st.query_params.to_dict())

st.title("History")
st.write("Coming next: instant search over every run, side-by-side comparison with diffs. "
         "Meanwhile `flux-lab history --search WORDS` finds runs from the command line.")
