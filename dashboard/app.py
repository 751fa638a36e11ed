"""Face-denoising lab dashboard: ``streamlit run dashboard/app.py``.

Eight pages (Findings, Browse test faces, Noise lab, Noise strength, Error distributions, Training,
Blind test, Method).
Locations come from environment variables with repo defaults: DENOISING_TABLES_DIR,
DENOISING_CHECKPOINT_DIR, DENOISING_CELEBA_DIR and DENOISING_CELEBA_DIRS (named folders a visitor may
choose among in the sidebar; visitors never type a path); DENOISING_VOTES_DIR holds the blind test's votes.
"""

import streamlit as st

from dashboard import common

st.set_page_config(page_title="Face denoising lab", layout="wide")

PAGES = [
    st.Page("views/findings.py", title="Findings", icon=":material/insights:", default=True),
    st.Page("views/browse.py", title="Browse test faces", icon=":material/photo_library:", url_path="browse"),
    st.Page("views/noise_lab.py", title="Noise lab", icon=":material/tune:", url_path="noise_lab"),
    st.Page("views/noise_strength.py", title="Noise strength", icon=":material/show_chart:", url_path="noise_strength"),
    st.Page("views/distributions.py", title="Error distributions", icon=":material/bar_chart:", url_path="distributions"),
    st.Page("views/training.py", title="Training", icon=":material/model_training:", url_path="training"),
    st.Page("views/blind_test.py", title="Blind test", icon=":material/how_to_vote:", url_path="blind_test"),
    st.Page("views/method.py", title="Method", icon=":material/menu_book:", url_path="method"),
]

page = st.navigation(PAGES)
common.sidebar()
page.run()
